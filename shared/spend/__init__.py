"""Spend governance: budgets a call must fit before any provider is called."""
