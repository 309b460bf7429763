"""The running bot: callback server, event worker, outbox sender, due actions, upload page, and
the one factory that builds a handler Context."""
