{
  "targets": [
    {
      "target_name": "sshcrypto",
      "sources": ["sshcrypto.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
