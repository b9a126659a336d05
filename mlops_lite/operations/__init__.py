"""Operations on a repository's runs: sharing, reproducing, comparing, annotating."""

__all__: list[str] = []
