"""Wide & deep ranker over retrieval candidates, with session context."""
