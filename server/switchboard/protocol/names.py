"""Names a client may call before anything else is loaded (kept free of heavy imports for cold start)."""

# workspace/executeCommand names, for editors without custom-request support.
COMMAND_SELECT_MODEL = "switchboard.selectModel"
COMMAND_NEW_CONVERSATION = "switchboard.newConversation"
COMMANDS = (COMMAND_SELECT_MODEL, COMMAND_NEW_CONVERSATION)
