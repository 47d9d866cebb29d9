"""Amazon Selling Partner API: MFN orders polled in, FBA stock imported, listings quantities out."""
