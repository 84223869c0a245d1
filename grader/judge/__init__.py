"""Decides: never imports a submission; reaches it only through the channel."""
