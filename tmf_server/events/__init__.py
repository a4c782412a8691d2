"""Events: built from every change, kept durably with it, fanned out to hub subscriptions and delivered."""
