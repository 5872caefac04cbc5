"""invoke task modules, one per namespace; logic lives in the lab package, not here."""
