"""Commands that live in modules of their own, named in cli.LAZY_COMMANDS and imported only when they run."""
