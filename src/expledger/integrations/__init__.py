"""Adapters that log from where training already happens, onto the Python API (run.py).

    from expledger.integrations.transformers import ExpLedgerCallback   # pip install 'expledger[transformers]'
    from expledger.integrations.lightning import ExpLedgerLogger        # pip install 'expledger[lightning]'

Each module imports its framework only when used; `import expledger` never imports torch.
"""
