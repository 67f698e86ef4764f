"""Outgoing mail as rows written in the transaction of the change they tell about, and the
sender that delivers them after that transaction commits (the transactional outbox)."""
