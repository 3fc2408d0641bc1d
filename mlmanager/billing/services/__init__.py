"""Billing's services: `ledger` (charges, credits, holds), `prices` (what things cost)."""
