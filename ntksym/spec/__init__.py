"""Spec files: TOML text -> validated :class:`Spec` (``parse``) -> networkx graph (``graph``)."""
