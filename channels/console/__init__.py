"""The console channel: the embedded default, a chat in the terminal."""
