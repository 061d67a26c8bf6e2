"""Execution for the paper loop: the policy that turns targets into orders, the fill simulator, the ledger."""
