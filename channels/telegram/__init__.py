"""The Telegram channel: aiogram in, the engine, the Bot API out; the agent desk's Telegram
group."""
