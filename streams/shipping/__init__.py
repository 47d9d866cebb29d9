"""The shipping service: picked orders packed, labelled, shipped and tracked to delivery."""
