// The translation unit that the shared precompiled header is built with
// (cmake/precompiled_headers.cmake); it has no code of its own.
