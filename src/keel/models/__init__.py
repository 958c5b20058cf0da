"""Model packages: safe formats, signatures, requirements, validated loading."""
