"""WooCommerce: webhooks and REST order polling in, ``products/batch`` out."""
