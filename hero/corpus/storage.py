"""The corpus reader's storage: re-exported from `hero.storage` (local folders and ``s3://`` prefixes)."""

from hero.storage import LocalStorage, Storage, open_storage

__all__ = ["LocalStorage", "Storage", "open_storage"]
