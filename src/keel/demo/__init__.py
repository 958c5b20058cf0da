"""The synthetic credit-approval world and the closed-loop demo built on it."""

from keel.demo._run import run_demo
from keel.demo._world import CATEGORICAL, NUMERIC, SENSITIVE, TARGET, generate_credit_data

__all__ = ["CATEGORICAL", "NUMERIC", "SENSITIVE", "TARGET", "generate_credit_data", "run_demo"]
