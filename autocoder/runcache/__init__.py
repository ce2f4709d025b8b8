"""The run-cache: a task's targets stored by the hash of everything that determines them.

A fresh clone (a CI job, a second checkout) has no `.doit.db` and no `generated/`, so doit runs
every task. With the run-cache, a task whose key (its kind, the tool versions that run it and
the content of its file dependencies) was stored before restores its targets instead of running
its actions. The cache is bytes and JSON only: nothing in it is imported or executed on load.

- keys.py: the key of a task and the fingerprint fields (tool versions, machine class)
- store.py: where entries live (a local directory; a remote directory or fsspec URL)
- cache.py: lookup, verify, restore and save of one entry; HMAC signing
- tasks.py: the one wrapper applied to every task dict in dodo.py
- explain.py: why the next build would run a task (`autocoder explain`)
"""
