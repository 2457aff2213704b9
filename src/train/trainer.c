/* trainer.c: the training loop described in trainer.h. It sees only the backend
 * interface, the model and the data pipeline. */
#include "hd/trainer.h"
#include "hd/common.h"
#include "hd/evaluate.h"
#include "hd/interrupt.h"
#include "hd/model_summary.h"
#include "hd/pipeline.h"
#include "hd/progress.h"
#include "hd/run_dir.h"
#include "hd/train_step.h"
#include "hd/freeze.h"
#include "hd/transfer.h"
#include "train_finish.h"
#include "train_state.h"
#include "hd/run_settings.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Everything one run holds, so that cleanup is one function. */
typedef struct {
    hd_float_set train, val, test;
    hd_model model;
    hd_optimizer opt;
    hd_train_state state;
    hd_pipeline *pipeline;
    hd_train_step step;
    hd_run_lock lock;
    hd_run_settings_text resumed; /* strings of the settings a resumed run restored */
    hd_lr_schedule schedule;      /* the learning rate of each step */
    int model_ok, opt_ok, state_ok;
    char spec[HD_RUN_SETTING_LEN]; /* the spec with its output layer sized to the class count */
    char *class_names;             /* --class-names, until the model holds them */
    hd_init_source init;           /* --init */
    int init_ok;
    char resumed_init[4200]; /* a resumed run's --init, from its settings.txt */
} run_context;

static void run_context_free(run_context *rc) {
    hd_run_dir_release(&rc->lock);
    if (rc->init_ok)
        hd_init_source_free(&rc->init);
    free(rc->class_names);
    hd_pipeline_destroy(rc->pipeline);
    hd_train_step_free(&rc->step);
    if (rc->state_ok)
        hd_train_state_free(&rc->state);
    if (rc->opt_ok)
        hd_optimizer_free(&rc->opt, &rc->model);
    if (rc->model_ok)
        hd_model_destroy(&rc->model);
    hd_float_set_free(&rc->train);
    hd_float_set_free(&rc->val);
    hd_float_set_free(&rc->test);
}

static int prepare_data(run_context *rc, const hd_train_config *cfg, const hd_dataset *train,
                        const hd_dataset *test) {
    int count = cfg->train_limit > 0 && cfg->train_limit < train->count ? cfg->train_limit : train->count;
    int *train_idx = NULL, *val_idx = NULL, n_train = 0, n_val = 0;
    if (hd_split_indices(count, cfg->val_fraction, cfg->seed, &train_idx, &n_train, &val_idx, &n_val) != 0)
        return -1;
    int rc_train = hd_float_set_view_bytes(&rc->train, train->images, train->labels, train->rows, train->cols,
                                           train_idx, n_train);
    int rc_val = hd_float_set_view_bytes(&rc->val, train->images, train->labels, train->rows, train->cols,
                                         val_idx, n_val);
    free(train_idx);
    free(val_idx);
    int n_test = cfg->test_limit > 0 && cfg->test_limit < test->count ? cfg->test_limit : test->count;
    int rc_test =
        hd_float_set_view_bytes(&rc->test, test->images, test->labels, test->rows, test->cols, NULL, n_test);
    if (rc_train || rc_val || rc_test)
        return -1;
    if (n_train < 1)
        return hd_fail("no training images left after the validation split");
    return 0;
}

/* What transfer learning settles before anything is written (transfer.h): the class count and the output
 * layer that follows it (into cfg->spec), the layers --freeze names, the class names, and the --init
 * tensors that match the model. */
static int prepare_transfer(run_context *rc, hd_train_config *cfg, const hd_dataset *train,
                            const hd_dataset *test) {
    int classes = 0;
    if (hd_transfer_classes(train, test->count > 0 ? test : NULL, cfg->num_classes, &classes) != 0 ||
        hd_transfer_spec(cfg->spec, classes, rc->spec, sizeof rc->spec) != 0)
        return -1;
    cfg->spec = rc->spec;
    hd_model layout;
    if (hd_model_layout(&layout, cfg->spec, 1, train->rows, train->cols, cfg->batch) != 0 ||
        hd_freeze_apply(&layout, cfg->freeze) != 0)
        return -1;
    if (cfg->class_names && hd_class_names_read(cfg->class_names, classes, &rc->class_names) != 0)
        return -1;
    if (cfg->init && !cfg->resume) {
        if (hd_init_source_open(&rc->init, cfg->init, &layout) != 0)
            return -1;
        rc->init_ok = 1;
    }
    return 0;
}

/* A training batch norm needs two values or more per channel to have a variance: one image through a bn
 * that sees a 1x1 map (after a flat layer, or after a conv down to 1x1) has one. PyTorch refuses that step;
 * so does this, before the first one, rather than normalise to beta, pass no gradient and pull the running
 * statistics toward a single image. Only the epoch's last batch can be that small. */
static int check_batchnorm_batches(const hd_model *model, int train_count, int batch) {
    int last = train_count % batch ? train_count % batch : batch;
    for (int i = 0; i < model->n_layers && last == 1; i++) {
        const hd_layer *l = &model->layers[i];
        if (l->spec.kind == HD_LAYER_BATCHNORM && !l->frozen && l->in_h * l->in_w == 1)
            return hd_fail(
                "%s sees one value per channel in the last batch of each epoch (%d training images "
                "in batches of %d leave one image): batch statistics need two; use another "
                "--batch-size, --train-limit or --val-split",
                l->name, train_count, batch);
    }
    return 0;
}

static int is_bad(double x) {
    return isnan(x) || isinf(x);
}

/* Reduce-LR-on-plateau and early stopping, from this epoch's validation loss.
 * Returns 1 if training should stop. */
static int update_schedules(run_context *rc, const hd_train_config *cfg, double val_loss, double val_acc,
                            int epoch, int *improved) {
    hd_train_state *st = &rc->state;
    *improved = val_loss < st->best_val_loss - cfg->es_min_delta;
    if (*improved) {
        st->best_val_loss = val_loss;
        st->best_val_acc = val_acc;
        st->best_epoch = epoch;
        st->es_wait = 0;
    } else {
        st->es_wait++;
    }
    if (cfg->lr_schedule != HD_LR_CONSTANT) /* the schedule sets every step's rate */
        return cfg->es_patience > 0 && st->es_wait >= cfg->es_patience;
    if (val_loss < st->lr_best - 1e-4) {
        st->lr_best = val_loss;
        st->lr_wait = 0;
    } else if (++st->lr_wait >= cfg->lr_patience) {
        float new_lr = (float)fmax(rc->opt.lr * cfg->lr_factor, cfg->min_lr);
        if (new_lr < rc->opt.lr)
            rc->opt.lr = new_lr; /* announced after this epoch's line */
        st->lr_wait = 0;
    }
    return cfg->es_patience > 0 && st->es_wait >= cfg->es_patience;
}

/* The epochs a run begins: cfg->epochs rounded up. */
static int epochs_begun(const hd_train_config *cfg) {
    return (int)ceil(cfg->epochs);
}

/* The batches epoch `epoch` (0-based) trains of its `steps`: all, but for a fractional last epoch its share
 * (at least one). */
static int epoch_batches(const hd_train_config *cfg, int epoch, int steps) {
    double share = cfg->epochs - (double)epoch;
    if (share >= 1.0)
        return steps;
    int n = (int)lround(share * steps);
    return n < 1 ? 1 : n > steps ? steps : n;
}

/* One pass over the training set (or the share of it that a fractional last epoch trains), from batch
 * rc->state.epoch_step on (an epoch a signal stopped carries on
 * where it stopped, with its metrics so far). Returns -1 on divergence, HD_TRAIN_INTERRUPTED when a signal
 * asked to stop: then the steps done are in rc->state.epoch_step and its metrics, for the checkpoint. */
static int train_epoch(run_context *rc, const hd_train_config *cfg, int epoch, hd_epoch_metrics *row) {
    hd_model *model = &rc->model;
    hd_backend *be = model->be;
    hd_train_state *st = &rc->state;
    int first = st->epoch_step;
    int steps = epoch_batches(cfg, epoch, hd_pipeline_start_epoch_at(rc->pipeline, (uint64_t)epoch, first));
    double data_seconds = hd_pipeline_wait_seconds(rc->pipeline);
    float metrics[2] = {st->epoch_metrics[0], st->epoch_metrics[1]};
    if (first > 0)
        be->ops->upload(be, model->metrics, metrics, sizeof metrics);
    else
        be->ops->zero(be, model->metrics, sizeof metrics);
    hd_progress progress;
    hd_progress_begin(&progress, cfg->progress, epoch + 1, epochs_begun(cfg), steps);
    double t0 = hd_now_seconds();
    int seen = st->epoch_seen, seen_here = 0, n, step = first;
    for (; step < steps && (n = hd_pipeline_next(rc->pipeline, model)) > 0; step++) {
        if (cfg->lr_schedule != HD_LR_CONSTANT) /* step opt.t's rate, into the step size of this step */
            rc->opt.lr = (float)hd_lr_schedule_rate(&rc->schedule, rc->opt.t);
        hd_train_step_run(&rc->step, n, st->global_step++);
        seen += n;
        seen_here += n;
        if (hd_interrupt_pending()) {
            /* This step is queued; the download below waits for it. Where the epoch stands goes into the
             * checkpoint, and --resume carries on from the next batch. */
            hd_pipeline_restore(rc->pipeline, model);
            hd_progress_end(&progress);
            be->ops->download(be, st->epoch_metrics, model->metrics, sizeof st->epoch_metrics);
            if (is_bad(st->epoch_metrics[0])) /* never save a diverged model over the last good one */
                return hd_fail("training diverged: loss is %g at epoch %d step %d",
                               (double)st->epoch_metrics[0], epoch + 1, step + 1);
            st->epoch_step = step + 1;
            st->epoch_seen = seen;
            return HD_TRAIN_INTERRUPTED;
        }
        if (hd_progress_due(&progress)) { /* the only read-back inside the epoch */
            be->ops->download(be, metrics, model->metrics, sizeof metrics);
            if (is_bad(metrics[0])) {
                hd_pipeline_restore(rc->pipeline, model);
                return hd_fail("training diverged: loss is %g at epoch %d step %d", (double)metrics[0],
                               epoch + 1, step + 1);
            }
            hd_progress_draw(&progress, step + 1, metrics[0] / seen, metrics[1] / seen,
                             seen_here / (hd_now_seconds() - t0));
        }
    }
    hd_pipeline_restore(rc->pipeline, model); /* a fractional epoch ends before the pipeline does */
    be->ops->download(be, metrics, model->metrics, sizeof metrics);
    double train_seconds = hd_now_seconds() - t0;
    hd_progress_end(&progress);
    /* The whole epoch is trained: should validation be interrupted, --resume starts at validation. */
    st->epoch_step = steps;
    st->epoch_metrics[0] = metrics[0];
    st->epoch_metrics[1] = metrics[1];
    st->epoch_seen = seen;
    row->train_loss = seen ? metrics[0] / seen : 0.0;
    row->train_acc = seen ? metrics[1] / seen : 0.0;
    row->images_per_sec = train_seconds > 0 ? seen_here / train_seconds : 0.0;
    /* Beside a GPU the producer should stay ahead; say so when it did not. */
    data_seconds = hd_pipeline_wait_seconds(rc->pipeline) - data_seconds;
    if (!cfg->quiet && model->be->is_gpu && data_seconds > 0.05 * train_seconds)
        printf("  data-bound: waited %.1f s of %.1f s for batches (augmentation or copies too slow)\n",
               data_seconds, train_seconds);
    if (is_bad(row->train_loss))
        return hd_fail("training diverged: loss is %g in epoch %d", row->train_loss, epoch + 1);
    return 0;
}

int hd_train(hd_backend *be, const hd_train_config *user_cfg, const hd_dataset *train, const hd_dataset *test,
             hd_train_result *result) {
    run_context rc;
    memset(&rc, 0, sizeof rc);
    rc.lock.fd = -1; /* not claimed yet: nothing to release */
    memset(result, 0, sizeof *result);
    if (!user_cfg->run_dir || !user_cfg->run_dir[0])
        return hd_fail("training needs a run directory (hd_train_config.run_dir)");
    /* The directory first: made, writable, locked, and not holding another run (run_dir.h). */
    hd_run_mode mode = user_cfg->resume ? HD_RUN_RESUME : user_cfg->overwrite ? HD_RUN_OVERWRITE : HD_RUN_NEW;
    hd_train_config run_cfg = *user_cfg;
    const hd_train_config *cfg = &run_cfg;
    int status = -1;
    /* A new run's transfer-learning inputs are checked before its directory is claimed: a bad one writes
     * nothing. A resumed run's wait for its recorded settings. */
    if (!user_cfg->resume && prepare_transfer(&rc, &run_cfg, train, test) != 0)
        goto done;
    if (hd_run_dir_claim(user_cfg->run_dir, mode, &rc.lock) != 0)
        goto done;
    /* A resumed run keeps the settings it was started with (the seed, so the same validation images are
     * held out; the model; the data's size; the batch size ...): the command line may not contradict
     * them, but for --epochs (run_settings.h). */
    if (user_cfg->resume && (hd_train_state_resume_settings(&run_cfg, &rc.resumed) != 0 ||
                             prepare_transfer(&rc, &run_cfg, train, test) != 0))
        goto done;
    /* Where a resumed run's weights first came from is not a setting (nothing is loaded from it again),
     * but settings.txt, written anew below, keeps saying it. */
    if (user_cfg->resume && !(run_cfg.init && run_cfg.init[0])) {
        char *before = hd_run_settings_file_read(run_cfg.run_dir);
        if (before &&
            hd_run_settings_file_value(before, "init", rc.resumed_init, sizeof rc.resumed_init) == 1)
            run_cfg.init = rc.resumed_init;
        free(before);
    }
    double start = cfg->process_start > 0 ? cfg->process_start : hd_now_seconds();
    if (hd_run_settings_file_write(cfg, be->ops->describe(be)) != 0 ||
        prepare_data(&rc, cfg, train, test) != 0)
        goto done;
    /* Evaluation goes in chunks of the model's batch (hd_evaluate): at 1,000 images the activations alone
     * held ~150 MB more than at the training batch. */
    int max_batch = cfg->batch > cfg->eval_batch ? cfg->batch : cfg->eval_batch;
    if (hd_model_create(&rc.model, be, cfg->spec, 1, train->rows, train->cols, max_batch) != 0)
        goto done;
    rc.model_ok = 1;
    /* The training steps' objective; evaluation's loss stays the plain cross-entropy (model.h). */
    rc.model.label_smoothing = cfg->label_smoothing;
    hd_freeze_apply(&rc.model, cfg->freeze); /* checked on the layout in prepare_transfer */
    if (check_batchnorm_batches(&rc.model, rc.train.count, cfg->batch) != 0)
        goto done;
    /* The model takes the training images' shape; a test set of another shape would be copied past the
     * end of its input buffer. */
    if (test->count > 0 &&
        hd_model_check_input(&rc.model, hd_dataset_name(test), 1, test->rows, test->cols) != 0)
        goto done;
    hd_optimizer_defaults(&rc.opt, cfg->optimizer);
    rc.opt.lr = cfg->lr;
    rc.opt.momentum = cfg->momentum;
    rc.opt.nesterov = cfg->nesterov;
    rc.opt.beta1 = cfg->adam_beta1;
    rc.opt.beta2 = cfg->adam_beta2;
    rc.opt.ema_decay = cfg->ema;
    int steps_per_epoch = (rc.train.count + cfg->batch - 1) / cfg->batch, n_epochs = epochs_begun(cfg);
    rc.schedule = (hd_lr_schedule){.kind = cfg->lr_schedule,
                                   .peak = cfg->lr,
                                   .min_lr = cfg->min_lr,
                                   .pct_start = cfg->pct_start,
                                   .div_factor = HD_ONECYCLE_DIV_FACTOR,
                                   .final_div_factor = HD_ONECYCLE_FINAL_DIV_FACTOR,
                                   .decay = cfg->lr_decay,
                                   .steps_per_epoch = (uint64_t)steps_per_epoch,
                                   .total = (uint64_t)(n_epochs - 1) * (uint64_t)steps_per_epoch +
                                            (uint64_t)epoch_batches(cfg, n_epochs - 1, steps_per_epoch)};
    if (hd_optimizer_init(&rc.opt, &rc.model) != 0)
        goto done;
    rc.opt_ok = 1;
    hd_train_step_init(&rc.step, &rc.model, &rc.opt, cfg->seed);
    if (hd_train_state_init(&rc.state, &rc.model) != 0)
        goto done;
    rc.state_ok = 1;
    hd_train_state_data_id(train, rc.state.data_id, sizeof rc.state.data_id);
    if (cfg->normalize) /* the training images' statistics; evaluation sets take the same convention */
        hd_float_set_mean_std(&rc.train, &rc.model.input_mean, &rc.model.input_std);
    if (cfg->resume) {
        if (hd_train_state_resume(&rc.state, cfg->run_dir, &rc.model, &rc.opt) != 0)
            goto done;
        if (rc.state.epochs_done >= cfg->epochs && (cfg->given & hd_run_settings_bit("epochs"))) {
            hd_fail("--epochs %g: the run in %s has done %d epochs already (a fractional last one counts "
                    "whole); give more to extend it",
                    cfg->epochs, cfg->run_dir, rc.state.epochs_done);
            goto done;
        }
        if (!cfg->quiet && !rc.val.count && rc.state.epoch_step > 0) /* no validation loss to quote */
            printf("resuming %s in epoch %d after batch %d (no validation split)\n", cfg->run_dir,
                   rc.state.epochs_done + 1, rc.state.epoch_step);
        else if (!cfg->quiet && !rc.val.count)
            printf("resuming %s after epoch %d (no validation split)\n", cfg->run_dir, rc.state.epochs_done);
        else if (!cfg->quiet && rc.state.epoch_step > 0)
            printf("resuming %s in epoch %d after batch %d (best epoch %d, val_loss %.4f)\n", cfg->run_dir,
                   rc.state.epochs_done + 1, rc.state.epoch_step, rc.state.best_epoch,
                   rc.state.best_val_loss);
        else if (!cfg->quiet)
            printf("resuming %s after epoch %d (best epoch %d, val_loss %.4f)\n", cfg->run_dir,
                   rc.state.epochs_done, rc.state.best_epoch, rc.state.best_val_loss);
    } else if (hd_model_init_weights(&rc.model, cfg->seed) != 0) {
        goto done;
    } else if (rc.init_ok) {
        /* --init: the matching tensors over the fresh weights, and the source's input convention, which its
         * features were learned in, unless --normalize asks for the training images' own. */
        if (!cfg->quiet)
            hd_init_source_print(&rc.init, stdout);
        if (hd_init_source_apply(&rc.init, &rc.model, !cfg->normalize) != 0)
            goto done;
    }
    if (rc.class_names) { /* --class-names (a resumed run has its checkpoint's unless given again) */
        free(rc.model.class_names);
        rc.model.class_names = rc.class_names;
        rc.class_names = NULL;
    }
    /* Validation and test images once, now, in the model's convention (a resumed run's, from its checkpoint);
     * training batches in the pipeline, after augmentation. */
    float mean = rc.model.input_mean, std = rc.model.input_std;
    hd_float_set_normalize(&rc.val, mean, std);
    hd_float_set_normalize(&rc.test, mean, std);
    if (!cfg->quiet && (mean != 0.0f || std != 1.0f))
        printf("inputs normalised: (x - %.4f) / %.4f (%s)\n", (double)mean, (double)std,
               rc.init_ok && !cfg->normalize ? "the --init model's convention"
                                             : "the training images' mean and std");
    hd_pipeline_config pcfg = {.data = &rc.train,
                               .batch = cfg->batch,
                               .seed = cfg->seed,
                               .augment = cfg->augment,
                               .norm_mean = rc.model.input_mean,
                               .norm_std = rc.model.input_std};
    pcfg.ranges = (hd_augment_ranges){.max_rotation_deg = cfg->augment_rotation,
                                      .max_shift_px = cfg->augment_shift,
                                      .min_zoom = 1.0f - cfg->augment_zoom,
                                      .max_zoom = 1.0f + cfg->augment_zoom};
    if (hd_pipeline_create(&rc.pipeline, be, &pcfg) != 0)
        goto done;
    if (!cfg->quiet) {
        hd_model_summary summary;
        hd_model_summary_make(&rc.model, &summary);
        hd_model_summary_print(stdout, &summary);
        int lowest = hd_model_first_trainable(&rc.model);
        if (cfg->freeze && cfg->freeze[0]) {
            char frozen[512];
            hd_freeze_describe(&rc.model, frozen, sizeof frozen);
            printf("frozen (--freeze %s): %s; backward stops at %s\n", cfg->freeze, frozen,
                   rc.model.layers[lowest].name);
        }
    }
    if (!cfg->quiet && cfg->ema > 0)
        printf("weights averaged (--ema %g): validation, test and best.safetensors use the moving average\n",
               cfg->ema);
    if (!cfg->quiet && rc.val.count)
        printf("training on %d images, validating on %d, testing on %d; %zu parameters\n", rc.train.count,
               rc.val.count, rc.test.count, rc.model.param_count);
    else if (!cfg->quiet)
        printf("training on %d images (no validation split: no early stopping, the last %s kept), "
               "testing on %d; %zu parameters\n",
               rc.train.count, cfg->ema > 0 ? "averaged weights are" : "weights are", rc.test.count,
               rc.model.param_count);
    fflush(stdout); /* a log file or pipe sees the start now, not after the first epoch */

    double epoch_seconds_sum = 0, ips_sum = 0;
    int epochs_here = 0;
    /* A run that early stopping ended (and was then resumed, or stopped by a signal before its test
     * evaluation) trains no further: it ends as the uninterrupted run did. */
    int stopped_before = cfg->resume && cfg->es_patience > 0 && rc.state.es_wait >= cfg->es_patience &&
                         rc.state.epoch_step == 0;
    result->stopped_early = stopped_before;
    result->no_validation = rc.val.count == 0;
    for (int epoch = rc.state.epochs_done; !stopped_before && epoch < n_epochs; epoch++) {
        hd_epoch_metrics row = {.epoch = epoch + 1, .lr = rc.opt.lr};
        double t0 = hd_now_seconds();
        int trained = train_epoch(&rc, cfg, epoch, &row);
        if (trained == HD_TRAIN_INTERRUPTED)
            goto interrupted;
        if (trained != 0)
            goto diverged;
        if (cfg->lr_schedule != HD_LR_CONSTANT)
            row.lr = rc.opt.lr; /* the rate of the epoch's last step */
        /* --ema: the average is what is validated and kept (best.safetensors); the live weights come back
         * before last.safetensors is written and the next epoch trains. */
        if (hd_optimizer_average_apply(&rc.opt, &rc.model) != 0)
            goto done;
        hd_eval_result val = {0};
        if (rc.val.count && hd_evaluate(&rc.model, &rc.val, &val, NULL, NULL, NULL) != 0) {
            if (hd_interrupt_pending())
                goto interrupted;
            goto done;
        }
        if (is_bad(val.loss)) {
            hd_fail("training diverged: validation loss is %g after epoch %d", val.loss, epoch + 1);
            goto diverged;
        }
        /* Without a validation split there is no validation figure: NaN, which metrics.csv writes as
         * "nan" and the plot and report leave out, rather than a 0 that reads as a measured value. */
        row.val_loss = rc.val.count ? val.loss : NAN;
        row.val_acc = rc.val.count ? val.accuracy : NAN;
        row.seconds = hd_now_seconds() - t0;
        epoch_seconds_sum += row.seconds;
        ips_sum += row.images_per_sec;
        epochs_here++;
        int improved = 1, stop = 0;
        if (rc.val.count) /* without a validation loss there is nothing to judge by: keep the last */
            stop = update_schedules(&rc, cfg, val.loss, val.accuracy, epoch + 1, &improved);
        else
            rc.state.best_epoch = epoch + 1;
        rc.state.epochs_done = epoch + 1;
        rc.state.epoch_step = 0;
        rc.state.epoch_seen = 0;
        rc.state.epoch_metrics[0] = rc.state.epoch_metrics[1] = 0.0f;
        if (hd_train_state_add_row(&rc.state, &row) != 0)
            goto done;
        if (!cfg->quiet && rc.val.count)
            printf("epoch %2d/%g  loss %.4f  acc %.2f%%  val_loss %.4f  val_acc %.2f%%  lr %.2g  %.1fs  %.0f "
                   "img/s%s\n",
                   epoch + 1, cfg->epochs, row.train_loss, 100 * row.train_acc, row.val_loss,
                   100 * row.val_acc, row.lr, row.seconds, row.images_per_sec, improved ? "  *" : "");
        else if (!cfg->quiet)
            printf("epoch %2d/%g  loss %.4f  acc %.2f%%  lr %.2g  %.1fs  %.0f img/s\n", epoch + 1,
                   cfg->epochs, row.train_loss, 100 * row.train_acc, row.lr, row.seconds, row.images_per_sec);
        if (!cfg->quiet && rc.opt.lr < row.lr)
            printf("  validation loss flat for %d epochs: learning rate %g -> %g\n", cfg->lr_patience, row.lr,
                   (double)rc.opt.lr);
        fflush(stdout);
        if (improved) {
            hd_model_get_params(&rc.model, rc.state.best_params);
            hd_model_get_state(&rc.model, rc.state.best_state); /* the running statistics that go with them */
            if (hd_train_state_save_best(&rc.state, cfg->run_dir, &rc.model) != 0)
                goto done;
        }
        if (hd_optimizer_average_restore(&rc.opt, &rc.model) != 0 ||
            hd_train_state_save(&rc.state, cfg, &rc.model, &rc.opt) != 0)
            goto done;
        if (cfg->time_to_accuracy > 0) {
            hd_eval_result t = {0};
            int evaluated = hd_optimizer_average_apply(&rc.opt, &rc.model) == 0 &&
                            hd_evaluate(&rc.model, &rc.test, &t, NULL, NULL, NULL) == 0;
            if (hd_optimizer_average_restore(&rc.opt, &rc.model) != 0 || !evaluated) {
                if (hd_interrupt_pending())
                    goto stopped; /* the epoch is saved */
                goto done;
            }
            printf("  test_acc %.2f%% after %.1fs (reported only; never used for training decisions)\n",
                   100 * t.accuracy, hd_now_seconds() - start);
            if (t.accuracy >= cfg->time_to_accuracy) {
                printf("time_to_accuracy_s=%.3f epoch=%d test_acc=%.4f\n", hd_now_seconds() - start,
                       epoch + 1, t.accuracy);
                break;
            }
        }
        if (stop) {
            result->stopped_early = 1;
            if (!cfg->quiet)
                printf("early stopping: no validation-loss improvement for %d epochs; keeping epoch %d\n",
                       cfg->es_patience, rc.state.best_epoch);
            break;
        }
        if (hd_interrupt_pending())
            goto stopped; /* at an epoch's end: last.safetensors is written */
    }
    if (!cfg->quiet && rc.step.replays > 0)
        printf("training steps: %llu of %llu replayed from %d recordings (the rest ran op by op)\n",
               (unsigned long long)rc.step.replays, (unsigned long long)rc.step.steps_run,
               rc.step.recordings_made);
    result->epochs_run = rc.state.epochs_done;
    result->seconds_per_epoch = epochs_here ? epoch_seconds_sum / epochs_here : 0;
    result->images_per_sec = epochs_here ? ips_sum / epochs_here : 0;
    if (hd_train_finish(&rc.model, &rc.state, &rc.test, test, cfg, result) != 0) {
        if (hd_interrupt_pending()) /* in the final evaluation: every epoch is saved */
            goto stopped;
        goto done;
    }
    status = 0;
    goto done;
interrupted:
    /* In an epoch (or its validation): save where it stands, so that --resume carries on from there. */
    if (hd_optimizer_average_restore(&rc.opt, &rc.model) != 0 ||
        hd_train_state_save(&rc.state, cfg, &rc.model, &rc.opt) != 0)
        goto done;
stopped:
    result->epochs_run = rc.state.epochs_done;
    result->interrupted = hd_interrupt_pending();
    status = HD_TRAIN_INTERRUPTED;
    goto done;
diverged:
    if (rc.state.epochs_done > 0)
        fprintf(stderr, "hd-gpu: %s; the last good checkpoint %s/last.safetensors (epoch %d) is intact\n",
                hd_last_error(), cfg->run_dir, rc.state.epochs_done);
    else
        fprintf(stderr, "hd-gpu: %s; no epoch completed, so no checkpoint was written\n", hd_last_error());
    hd_fail("training diverged (see above); try a lower --lr");
done:
    run_context_free(&rc);
    return status;
}
