"""The Switchboard protocol: messages, the method map and errors."""
