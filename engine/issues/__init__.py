"""Issues (具体问题): finding and listing them, and the one transactional way to move them."""
