// Copyright (c) uttm developers.
#include "uttm/backup_store_factory.h"

#include <gtest/gtest.h>

#include <string>

namespace uttm {
namespace {

void ExpectBadSpec(const std::string& spec, const std::string& mentions) {
  auto store = CreateBackupStore(spec);
  ASSERT_FALSE(store.ok()) << spec;
  EXPECT_EQ(store.code(), Errc::kInvalid) << spec;
  EXPECT_NE(store.status().message().find(mentions), std::string::npos)
      << spec << " -> " << store.status().ToString();
}

TEST(BackupStoreFactoryTest, GoodSpecs) {
  for (const char* spec :
       {"memfd", "shmem", "memfd,allow_without_swap,cap=1M", "file", "file:/tmp",
        "file:/tmp/,cap=64G,reserve=1G", "file:/tmp,direct", "file:/tmp,no_tmpfile"}) {
    auto store = CreateBackupStore(spec);
    EXPECT_TRUE(store.ok()) << spec << ": " << store.status().ToString();
  }
  auto direct = CreateBackupStore("file:/tmp,direct");
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ((*direct)->Describe(), "file:/tmp (O_DIRECT)");
  auto capped = CreateBackupStore("memfd,allow_without_swap,cap=1M");
  ASSERT_TRUE(capped.ok());
  EXPECT_EQ((*capped)->BytesAvailable(), 1u << 20);
}

TEST(BackupStoreFactoryTest, BadSpecsNameWhatIsWrong) {
  ExpectBadSpec("", "empty");
  ExpectBadSpec("tape", "unknown store kind \"tape\"");
  ExpectBadSpec("memfd:/tmp", "takes no directory");
  ExpectBadSpec("memfd,direct", "unknown memfd option \"direct\"");
  ExpectBadSpec("file:", "empty directory");
  ExpectBadSpec("file:/tmp,fast", "unknown file option \"fast\"");
  ExpectBadSpec("file:/tmp,cap=12Q", "bad size in \"cap=12Q\"");
  ExpectBadSpec("file:/tmp,cap=", "bad size");
  ExpectBadSpec("memfd,cap=99999999999999999999G", "bad size");
  ExpectBadSpec("memfd,cap=100", "below one page");
}

TEST(BackupStoreFactoryTest, MissingDirectoryIsNotFound) {
  auto store = CreateBackupStore("file:/does/not/exist");
  EXPECT_EQ(store.code(), Errc::kNotFound);
}

}  // namespace
}  // namespace uttm
