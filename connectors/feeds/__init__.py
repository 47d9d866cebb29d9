"""ERP/WMS feeds: files of stock counts and movements dropped in a folder or on SFTP.

- ``rows``: what a file is read into: events, bad rows (line, reason, text), Unreadable;
- ``formats``: CSV snapshots and deltas, read row by row (line numbers for every bad row);
- ``edifact``: EANCOM INVRPT, DESADV and RECADV, read with pydifact;
- ``seen``: the content hashes of the files already processed, kept across restarts;
- ``sources``: a folder on disk or an SFTP folder (list, read, move to done/ or failed/);
- ``watcher``: takes each settled file once, publishes its good rows, reports the bad ones;
- ``command``: ``stockflow feeds watch`` and ``stockflow feeds import FILE``.
"""
