// The Go client of WowChat Users: the code protoc-gen-go and
// protoc-gen-go-grpc generate from proto/ (clients/generate), nothing
// hand-written but the smoke test. See clients/README.md.
//
// The versions are those of Debian 12's packages, which CI builds and tests
// against (offline, in GOPATH mode); they are minimums. There is no go.sum:
// CI cannot reach the module proxy to make one (`go mod tidy` writes it, and
// adds the indirect requirements).
module wowchat.dev/users/gen/go

go 1.19

require (
	google.golang.org/genproto v0.0.0-20200413115906-b5235f65be36
	google.golang.org/grpc v1.33.3
	google.golang.org/protobuf v1.28.1
)

// genproto's packages of this version are generated for github.com/golang/protobuf's
// APIv1; v1.4 and later implement it over google.golang.org/protobuf.
require github.com/golang/protobuf v1.5.2 // indirect
