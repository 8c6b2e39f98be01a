// Package deploy checks the container deployment files without a Docker
// engine: docker-compose.yml, its edge's nginx configuration
// (deploy/edge/nginx.conf), deploy/docker/*.Dockerfile and .dockerignore at
// the repository root. Its tests run in make test, so the files cannot drift
// from the code unnoticed.
//
// Check loads the compose file with the compose-spec loader (schema and
// consistency validation, as docker compose config does), parses every
// Dockerfile with BuildKit's parser and .dockerignore with the pattern
// matcher the Docker CLI uses, and cross-checks them against the run
// contract (the environment variables compose may set), the code (which
// variables each binary reads, which packages it builds) and go.work. With
// Options.Replay it also replays each builder stage locally: its COPY lines
// from the build context into a scratch directory, its RUN lines there (go
// mod download, go build), and checks the binary the final stage copies is
// there and static.
package deploy
