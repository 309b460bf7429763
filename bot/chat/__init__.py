"""The chat framework: inbound message types, the router and its filters, the one typed Context."""
