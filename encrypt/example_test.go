package encrypt_test

import (
	"errors"
	"fmt"
	"log"

	"github.com/ginbyok/byok/encrypt"
)

// Fixed example secrets; real ones come from GenerateSecret and live in the
// environment, never in code.
const (
	exampleOldSecret = "c2VjcmV0LW9uZS1mb3ItZXhhbXBsZXMtb25seS0xMjM0NQ=="
	exampleNewSecret = "7365637265742d74776f2d666f722d6578616d706c65732d6f6e6c792d313233"
)

func ExampleKeyring() {
	k, err := encrypt.KeyringFromSecrets(exampleNewSecret)
	if err != nil {
		log.Fatal(err)
	}
	// Bind the sealed key to its owner and provider.
	ad := encrypt.AssociatedData("user:42", "openai")
	ct, err := k.Seal([]byte("sk-proj-example-key-abcd"), ad)
	if err != nil {
		log.Fatal(err)
	}
	pt, err := k.Open(ct, ad)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(pt))

	// The same ciphertext does not open for another user.
	_, err = k.Open(ct, encrypt.AssociatedData("user:43", "openai"))
	fmt.Println(errors.Is(err, encrypt.ErrAuth))
	// Output:
	// sk-proj-example-key-abcd
	// true
}

func ExampleKeyring_Rewrap() {
	old, err := encrypt.KeyringFromSecrets(exampleOldSecret)
	if err != nil {
		log.Fatal(err)
	}
	ad := encrypt.AssociatedData("user:42", "anthropic")
	ct, err := old.Seal([]byte("sk-ant-example"), ad)
	if err != nil {
		log.Fatal(err)
	}

	// After rotation: the new secret seals, the old one still opens.
	k, err := encrypt.KeyringFromSecrets(exampleNewSecret, exampleOldSecret)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("needs rewrap:", k.NeedsRewrap(ct))
	ct, err = k.Rewrap(ct, ad)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("needs rewrap:", k.NeedsRewrap(ct))
	pt, err := k.Open(ct, ad)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(pt))
	// Output:
	// needs rewrap: true
	// needs rewrap: false
	// sk-ant-example
}

func ExampleMask() {
	fmt.Println(encrypt.Mask("sk-proj-Xq3vT9bL2mN8pR4sW7yZ1aC5dE6fG0hJ2kL4mN6pQ8rS0tU2vW4xY6zA8bC0dE2fWxyz"))
	fmt.Println(encrypt.Mask("gsk_8Hn2Kq4Lm6Np8Qr0St2Uv4Wx6Yz8Ab0Cd2Ef4Gh6Ij8Kl0Mn2"))
	// A short key shows less: at most a quarter of its characters.
	fmt.Println(encrypt.Mask("sk-abcdefgh1234"))
	fmt.Println(encrypt.Mask("tiny"))
	// Output:
	// sk-proj-…Wxyz
	// gsk_…0Mn2
	// sk-…
	// …
}

func ExampleGenerateSecret() {
	secret, err := encrypt.GenerateSecret()
	if err != nil {
		log.Fatal(err)
	}
	// Store secret in the environment or a secret manager, e.g. BYOK_SECRET.
	k, err := encrypt.KeyringFromSecrets(secret)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("key id %08x\n", k.PrimaryID())
}

func ExampleVerifyCheckValue() {
	k, err := encrypt.KeyringFromSecrets(exampleOldSecret)
	if err != nil {
		log.Fatal(err)
	}
	// At first start, store a check value beside the data.
	cv, err := encrypt.NewCheckValue(k)
	if err != nil {
		log.Fatal(err)
	}

	// At every later start, verify it before serving.
	fmt.Println(encrypt.VerifyCheckValue(k, cv))

	wrong, err := encrypt.KeyringFromSecrets(exampleNewSecret)
	if err != nil {
		log.Fatal(err)
	}
	err = encrypt.VerifyCheckValue(wrong, cv)
	fmt.Println(errors.Is(err, encrypt.ErrWrongSecret))
	// Output:
	// <nil>
	// true
}

func ExampleRedacted() {
	key := encrypt.Redacted("sk-proj-example-key-abcd")
	fmt.Printf("%v %s %q %#v\n", key, key, key, key)
	fmt.Println(len(key.Reveal()))
	// Output:
	// [REDACTED] [REDACTED] [REDACTED] [REDACTED]
	// 24
}
