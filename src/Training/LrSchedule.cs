using ResnetMnist.Config;
using TorchSharp.Modules;

namespace ResnetMnist.Training;

/// <summary>
/// The learning rate (and, for <c>onecycle</c>, the momentum) as a pure function of position, so that a resumed run
/// gets the same values as an uninterrupted one — computed with PyTorch 1.13's own arithmetic, so that the values
/// are PyTorch's bit for bit: StepLR and CosineAnnealingLR (stepped per epoch) use their recursive ("chainable")
/// <c>get_lr</c>, replayed from epoch 0 to the wanted epoch; OneCycleLR (stepped per batch; cosine annealing,
/// div_factor 25, final_div_factor 1e4, cycle_momentum with base_momentum 0.85 and max_momentum 0.95) is already a
/// function of the step. The closed forms PyTorch also has differ from the recursions in the last bits.
/// </summary>
public static class LrSchedule
{
    /// <summary>OneCycleLR's defaults for cycle_momentum.</summary>
    public const double BaseMomentum = 0.85, MaxMomentum = 0.95;

    /// <param name="epoch">0-based epoch.</param>
    /// <param name="step">0-based step over the whole run (used by onecycle).</param>
    /// <param name="totalSteps">Steps in the whole run.</param>
    public static double At(TrainingConfig cfg, int epoch, long step, long totalSteps)
    {
        double lr = cfg.Optimizer.Lr;
        var s = cfg.Scheduler;
        switch (s.Name)
        {
            case SchedulerKind.None:
                return lr;
            case SchedulerKind.Step:
            {
                // StepLR.get_lr: unchanged unless last_epoch is a positive multiple of step_size, then lr * gamma.
                double value = lr;
                for (int e = 1; e <= epoch; e++)
                    if (e % s.StepSize == 0) value = value * s.Gamma;
                return value;
            }
            case SchedulerKind.Cosine:
                return Cosine(lr, s.EtaMin, s.TMax ?? cfg.Train.Epochs, epoch);
            case SchedulerKind.OneCycle:
                return OneCycle(cfg, step, totalSteps).Lr;
            default:
                throw new NotSupportedException($"scheduler {s.Name}");
        }
    }

    /// <summary>The momentum (SGD) or beta1 (Adam, AdamW) OneCycleLR sets for this step; null for other schedulers.</summary>
    public static double? MomentumAt(TrainingConfig cfg, long step, long totalSteps) =>
        cfg.Scheduler.Name == SchedulerKind.OneCycle ? OneCycle(cfg, step, totalSteps).Momentum : null;

    /// <summary>
    /// Sets the learning rate of the step (and OneCycleLR's momentum / beta1) on every parameter group, as PyTorch's
    /// scheduler leaves them before that step; returns the learning rate.
    /// </summary>
    public static double Apply(OptimizerHelper optimizer, TrainingConfig cfg, int epoch, long step, long totalSteps)
    {
        double lr = At(cfg, epoch, step, totalSteps);
        Optimizers.SetLr(optimizer, lr);
        if (MomentumAt(cfg, step, totalSteps) is double m) Optimizers.SetMomentum(optimizer, m);
        return lr;
    }

    /// <summary>CosineAnnealingLR's recursion (PyTorch 1.13 <c>get_lr</c>, the <c>_step_count &gt; 1</c> branches), from epoch 0.</summary>
    static double Cosine(double baseLr, double etaMin, int tMax, int epoch)
    {
        double lr = baseLr; // last_epoch 0: the group's lr as constructed
        for (int e = 1; e <= epoch; e++)
        {
            if ((e - 1 - tMax) % (2 * tMax) == 0)
                lr = lr + (baseLr - etaMin) * (1 - Math.Cos(Math.PI / tMax)) / 2;
            else
                lr = (1 + Math.Cos(Math.PI * e / tMax)) / (1 + Math.Cos(Math.PI * (e - 1) / tMax)) * (lr - etaMin) + etaMin;
        }
        return lr;
    }

    /// <summary>OneCycleLR.get_lr (two phases, cosine annealing) at <c>last_epoch = step</c>.</summary>
    static (double Lr, double Momentum) OneCycle(TrainingConfig cfg, long step, long totalSteps)
    {
        var s = cfg.Scheduler;
        double maxLr = s.MaxLr ?? cfg.Optimizer.Lr * 10, initial = maxLr / 25, min = initial / 1e4;
        // _schedule_phases: end_step = float(pct_start * total_steps) - 1, then total_steps - 1.
        double up = s.PctStart * totalSteps - 1, end = totalSteps - 1;
        if (step <= up)
        {
            // PyTorch divides 0 by 0 here when up == 0 (pct_start * total_steps == 1) and stops; start at the initial values.
            double pct = up == 0 ? 0 : (step - 0) / (up - 0);
            return (Anneal(initial, maxLr, pct), Anneal(MaxMomentum, BaseMomentum, pct));
        }
        double pct2 = (step - up) / (end - up);
        return (Anneal(maxLr, min, pct2), Anneal(BaseMomentum, MaxMomentum, pct2));
    }

    /// <summary>OneCycleLR._annealing_cos, operation for operation.</summary>
    static double Anneal(double start, double end, double pct)
    {
        double cosOut = Math.Cos(Math.PI * pct) + 1;
        return end + (start - end) / 2.0 * cosOut;
    }
}
