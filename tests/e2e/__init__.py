"""End-to-end tests: the real aiogram client and engine against a fake Bot API on loopback."""
