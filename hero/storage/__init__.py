"""Storage for every artifact: local folders and ``s3://`` prefixes behind one interface (docs/s3.md).

`hero.storage.s3.S3Storage` (boto3) is imported only when an ``s3://`` location is opened.
"""

from hero.storage.base import (
    SCHEMES,
    LocalStorage,
    Storage,
    StorageError,
    TruncatedObjectError,
    cache_root,
    is_remote,
    join_uri,
    local_file,
    open_storage,
    publish_file,
    scheme_of,
    split_uri,
)

__all__ = [
    "SCHEMES", "LocalStorage", "Storage", "StorageError", "TruncatedObjectError", "cache_root", "is_remote",
    "join_uri", "local_file", "open_storage", "publish_file", "scheme_of", "split_uri",
]
