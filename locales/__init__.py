"""Gettext catalogs (``<lang>/LC_MESSAGES/messages.po``) and the message extractor."""
