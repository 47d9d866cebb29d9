"""PrestaShop webservice: orders polled in, ``stock_availables`` written out (no webhooks)."""
