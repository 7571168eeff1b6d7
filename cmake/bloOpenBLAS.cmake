# bloOpenBLAS.cmake — finds OpenBLAS (library + cblas.h) and defines the imported target
# blo::openblas. Used twice, so that both find the same library: by blo's own build, and by the
# installed bloConfig.cmake, whose blo::blo_static links blo::openblas.
#
# The OpenMP build of OpenBLAS first: it shares blo's OpenMP thread pool. With the pthread build,
# OpenMP's spinning workers and OpenBLAS's own threads compete for the cores.
if(TARGET blo::openblas)
  return()
endif()
find_path(BLO_CBLAS_INCLUDE_DIR cblas.h
          PATHS /usr/include/x86_64-linux-gnu/openblas-openmp /usr/include/aarch64-linux-gnu/openblas-openmp
          PATH_SUFFIXES openblas x86_64-linux-gnu/openblas-pthread)
find_library(BLO_OPENBLAS_LIBRARY NAMES openblas
             PATHS /usr/lib/x86_64-linux-gnu/openblas-openmp /usr/lib/aarch64-linux-gnu/openblas-openmp
             NO_DEFAULT_PATH)
if(NOT BLO_OPENBLAS_LIBRARY)
  find_library(BLO_OPENBLAS_LIBRARY NAMES openblas)
endif()
if(BLO_CBLAS_INCLUDE_DIR AND BLO_OPENBLAS_LIBRARY)
  add_library(blo::openblas UNKNOWN IMPORTED)
  set_target_properties(blo::openblas PROPERTIES IMPORTED_LOCATION "${BLO_OPENBLAS_LIBRARY}"
                        INTERFACE_INCLUDE_DIRECTORIES "${BLO_CBLAS_INCLUDE_DIR}")
endif()
