"""Commands that live in modules of their own, registered with `exp` by importing them in cli.py."""
