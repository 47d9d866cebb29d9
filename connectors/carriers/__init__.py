"""Carriers: rates, labels, pickups and tracking from Chronopost, DHL Express and UPS behind one
normalised model (``model``) and protocol (``base``); ``shopping`` chooses among them."""
