"""The Telegram Bot API over plain HTTP (``client.TelegramClient``)."""
