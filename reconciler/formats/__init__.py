"""PURE parsers of the formats other tools write, that observers read: nginx ``log_format`` strings compiled into
parsers of access-log bytes (``log_format``) and each pool member's requests attributed from those lines
(``access_log``). No I/O: the caller hands over the bytes it read.
"""
