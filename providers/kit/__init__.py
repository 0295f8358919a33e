"""The provider kit: what every provider needs and none writes again (HTTP client base, paginators, streams)."""
