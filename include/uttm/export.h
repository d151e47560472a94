// Copyright (c) uttm developers.
//
// export.h: symbol visibility for the uttm library. The library is built with hidden visibility;
// every public type and function carries UTTM_EXPORT so a shared build exports exactly the API.
#ifndef UTTM_EXPORT_H_
#define UTTM_EXPORT_H_

#if defined(UTTM_SHARED_LIBRARY) && defined(UTTM_COMPILE_LIBRARY)
#define UTTM_EXPORT __attribute__((visibility("default")))
#else
#define UTTM_EXPORT
#endif

#endif  // UTTM_EXPORT_H_
