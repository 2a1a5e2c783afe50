"""Everything that knows Redis' protocol: clients built from settings, the hot connection, the
bounded reply reader, the Lua sources and their registry, the ACL rules, URL checks.

May import: ``sessionsvc.errors``, ``sessionsvc.config`` (clients only) and its own modules;
no domain package (tokens, revocation, sessions) imports flow into it.
"""
