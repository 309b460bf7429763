"""Tools around the bot: the terminal console, the guided demo, the audit record in Chinese."""
