"""The ordering page (`stockflow web`): server-rendered HTML over the purchasing service."""
