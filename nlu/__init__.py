"""The intent corpus and the command that builds the intent model from it."""
