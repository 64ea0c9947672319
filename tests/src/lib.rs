//! What ELSE's tests share: a throwaway PostgreSQL cluster, the corpora in `../shared`.
