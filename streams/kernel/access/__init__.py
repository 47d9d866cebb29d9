"""Who may call the HTTP APIs: bearer tokens, their store, the request guard, rate limits."""
