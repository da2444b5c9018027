"""The WhatsApp channel on the Cloud API: Meta's webhook in, the engine, the Graph API out."""
