"""handoff: hand callers and chat users from an AI agent to a human, context intact.

`from handoff import Conversation` is the Python API (see handoff/conversation.py)."""


def __getattr__(name):
    # Imported lazily so `handoff.sip` and friends stay importable without the app's deps.
    if name == "Conversation":
        from .conversation import Conversation

        return Conversation
    raise AttributeError(name)
