package redisstore

// SignForTest returns the cookie value the store would set for id under the
// session name, so tests can present a validly signed cookie for any id.
func SignForTest(s *Store, name, id string) string { return signCookie(s.signers[0], name, id) }

// NewIDForTest returns a fresh random session id.
func NewIDForTest() string { return newID() }
