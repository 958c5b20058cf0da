pytest_plugins = ["keel.testing.fixtures"]
